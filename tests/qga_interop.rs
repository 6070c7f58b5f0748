//! qga interop: ONE set of expectations, run against the real qemu-ga 7.2 (`qemu-ga -m
//! unix-listen`, started by each test) and against guestwire's mock qga agent on a Unix socket;
//! plus a byte-level comparison of both agents' replies to the same request bytes.
//!
//! The real agent runs as whoever runs the tests (root in CI) with every command that could
//! change this machine blocked (`-b`, [`BLOCKED`]): a test cannot power anything off. Without
//! `/usr/sbin/qemu-ga` the real-agent tests are skipped with a message, except under `CI=true`,
//! where CI installs it (`apt-get install qemu-guest-agent`) and its absence fails them.
//! Each real agent is killed and reaped by a guard's `Drop`, also when a test fails.
//! `GUESTWIRE_QEMU_GA=/path` runs another qemu-ga binary.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use guestwire::guest::GuestConfig;
use guestwire::guest::exec::ExecMode;
use guestwire::guest::qga::{QgaAgent, serve_listener};
use guestwire::host::{ClientError, DialOptions, QgaClient};
use guestwire::io::{Endpoint, Listener};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// Where Debian's `qemu-guest-agent` installs the agent.
const QEMU_GA: &str = "/usr/sbin/qemu-ga";

/// The agent to run: `$GUESTWIRE_QEMU_GA`, else [`QEMU_GA`].
fn qemu_ga() -> PathBuf {
    std::env::var_os("GUESTWIRE_QEMU_GA").map_or_else(|| PathBuf::from(QEMU_GA), PathBuf::from)
}

/// Commands the real agent must never run here.
const BLOCKED: &str = "guest-shutdown,guest-suspend-disk,guest-suspend-ram,guest-suspend-hybrid,\
guest-set-time,guest-set-user-password,guest-fsfreeze-freeze,guest-fsfreeze-freeze-list,\
guest-fsfreeze-thaw,guest-set-vcpus,guest-set-memory-blocks,guest-ssh-add-authorized-keys,\
guest-ssh-remove-authorized-keys,guest-fstrim";

/// How long an agent gets to create its socket.
const STARTUP_DEADLINE: Duration = Duration::from_secs(10);
/// How long one raw exchange may take.
const EXCHANGE_DEADLINE: Duration = Duration::from_secs(10);

/// A real qemu-ga, killed and reaped on drop.
struct RealAgent {
    child: Child,
    sock: PathBuf,
    files: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for RealAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The mock agent serving a Unix socket, stopped on drop.
struct MockAgent {
    task: tokio::task::JoinHandle<Result<(), guestwire::io::ListenError>>,
    sock: PathBuf,
    files: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for MockAgent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

enum Agent {
    Real(RealAgent),
    Mock(MockAgent),
}

/// Whether qemu-ga can run here; under `CI=true` its absence is a failure.
fn have_qemu_ga() -> bool {
    let path = qemu_ga();
    if path.exists() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "{} is missing, but CI installs it (apt-get install qemu-guest-agent)",
            path.display()
        );
    }
    eprintln!(
        "SKIPPED: {} not found; install the Debian package qemu-guest-agent to run the \
         real-agent interop tests",
        path.display()
    );
    false
}

async fn wait_for_socket(path: &Path, child: Option<&mut Child>) {
    let start = tokio::time::Instant::now();
    let mut child = child;
    while !path.exists() {
        if let Some(c) = child.as_deref_mut()
            && let Ok(Some(status)) = c.try_wait()
        {
            panic!("qemu-ga exited before creating its socket: {status}");
        }
        assert!(
            start.elapsed() < STARTUP_DEADLINE,
            "no socket at {} within {STARTUP_DEADLINE:?}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Agent {
    /// A real qemu-ga, or `None` (skip) when it is not installed outside CI.
    async fn real() -> Option<Self> {
        if !have_qemu_ga() {
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = dir.path().join("qga.sock");
        let files = dir.path().join("files");
        std::fs::create_dir(&files).expect("files dir");
        let child = Command::new(qemu_ga())
            .arg("-m")
            .arg("unix-listen")
            .arg("-p")
            .arg(&sock)
            .arg("-t")
            .arg(dir.path())
            .arg("-l")
            .arg(dir.path().join("qga.log"))
            .arg("-b")
            .arg(BLOCKED)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start qemu-ga");
        let mut agent = RealAgent {
            child,
            sock,
            files,
            _dir: dir,
        };
        wait_for_socket(&agent.sock.clone(), Some(&mut agent.child)).await;
        Some(Self::Real(agent))
    }

    /// The mock agent, running commands for real, files under a root directory.
    async fn mock() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = dir.path().join("qga.sock");
        let files = dir.path().join("files");
        std::fs::create_dir(&files).expect("files dir");
        let agent = QgaAgent::new(Arc::new(GuestConfig {
            root: Some(files.clone()),
            exec: ExecMode::Real,
            ..GuestConfig::default()
        }));
        let listener = Listener::bind_unix(&sock).await.expect("bind");
        let task = tokio::spawn(serve_listener(listener, agent));
        wait_for_socket(&sock, None).await;
        Self::Mock(MockAgent {
            task,
            sock,
            files,
            _dir: dir,
        })
    }

    fn sock(&self) -> &Path {
        match self {
            Self::Real(a) => &a.sock,
            Self::Mock(a) => &a.sock,
        }
    }

    fn endpoint(&self) -> Endpoint {
        Endpoint::Unix(self.sock().to_path_buf())
    }

    /// A file name as the agent sees it, and where it is on this machine.
    fn file(&self, name: &str) -> (String, PathBuf) {
        match self {
            Self::Real(a) => {
                let host = a.files.join(name);
                (host.display().to_string(), host)
            }
            Self::Mock(a) => (format!("/{name}"), a.files.join(name)),
        }
    }

    async fn client(&self) -> QgaClient {
        QgaClient::connect(&self.endpoint(), DialOptions::default())
            .await
            .expect("connect and sync")
    }
}

/// Runs scenario `$name` against both agents, as `$name::real` and `$name::mock`.
macro_rules! interop {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn real() {
                if let Some(agent) = super::Agent::real().await {
                    super::$name(agent).await;
                }
            }

            #[tokio::test]
            async fn mock() {
                super::$name(super::Agent::mock().await).await;
            }
        }
    )*};
}

interop!(
    ping,
    info,
    sync_after_stray_bytes,
    exec_echo,
    exec_exit_code_and_stderr,
    exec_unstartable,
    unknown_command,
    file_round_trip,
);

async fn ping(agent: Agent) {
    let mut c = agent.client().await;
    c.ping().await.expect("ping");
    c.ping().await.expect("ping again");
}

async fn info(agent: Agent) {
    let info = agent.client().await.info().await.expect("info");
    assert!(!info.version.is_empty());
    assert!(!info.supported_commands.is_empty());
    for name in [
        "guest-ping",
        "guest-sync-delimited",
        "guest-exec",
        "guest-file-open",
    ] {
        assert!(
            info.supported_commands.iter().any(|c| c.name == name),
            "{name} missing"
        );
    }
    let shutdown = info
        .supported_commands
        .iter()
        .find(|c| c.name == "guest-shutdown")
        .expect("guest-shutdown listed");
    assert!(!shutdown.success_response, "guest-shutdown answers nothing");
}

async fn sync_after_stray_bytes(agent: Agent) {
    let mut raw = UnixStream::connect(agent.sock()).await.expect("connect");
    // Garbage (one error per token), a stray 0xFF (one error), half a command (cut by the
    // client's own 0xFF: one more error).
    raw.write_all(b"this is not json\n\xff{\"execute\":\"gue")
        .await
        .expect("write");
    let mut c = QgaClient::from_stream(Box::new(raw), DialOptions::default())
        .await
        .expect("sync through the stray replies");
    assert_eq!(c.skipped(), 6, "4 keyword errors, 2 stray-0xFF errors");
    c.ping().await.expect("in step after the sync");
}

async fn exec_echo(agent: Agent) {
    let mut c = agent.client().await;
    let st = c
        .exec("/bin/echo", &["hello".to_string()], true)
        .await
        .expect("exec");
    assert_eq!(st.exit_code, Some(0));
    assert_eq!(st.signal, None);
    assert_eq!(String::from_utf8_lossy(&st.stdout), "hello\n");
    assert!(st.stderr.is_empty());
}

async fn exec_exit_code_and_stderr(agent: Agent) {
    let mut c = agent.client().await;
    let args = ["-c", "echo out; echo err >&2; exit 3"].map(String::from);
    let st = c.exec("/bin/sh", &args, true).await.expect("exec");
    assert_eq!(st.exit_code, Some(3));
    assert_eq!(st.stdout, b"out\n");
    assert_eq!(st.stderr, b"err\n");
    let quiet = c.exec("/bin/true", &[], true).await.expect("exec");
    assert_eq!((quiet.exit_code, quiet.stdout.len()), (Some(0), 0));
    let err = c
        .execute(
            "guest-exec-status",
            Some(serde_json::json!({"pid": st.pid})),
        )
        .await
        .expect_err("a pid is reported once");
    assert_agent_error(err, "GenericError", "Invalid parameter 'pid'");
}

async fn exec_unstartable(agent: Agent) {
    let mut c = agent.client().await;
    let err = c
        .exec("/nonexistent/prog", &[], true)
        .await
        .expect_err("cannot start");
    assert_agent_error(
        err,
        "GenericError",
        "Guest agent command failed, error was 'Failed to execute child process \u{201C}/nonexistent/prog\u{201D} (No such file or directory)'",
    );
}

async fn unknown_command(agent: Agent) {
    let mut c = agent.client().await;
    let err = c
        .execute("guest-no-such-command", None)
        .await
        .expect_err("unknown");
    assert_agent_error(
        err,
        "CommandNotFound",
        "The command guest-no-such-command has not been found",
    );
    c.ping().await.expect("still in step");
}

async fn file_round_trip(agent: Agent) {
    let mut c = agent.client().await;
    let (guest, host) = agent.file("round-trip.bin");
    let data: Vec<u8> = b"hello qga\n"
        .iter()
        .copied()
        .chain((0..=255u8).cycle().take(10_000))
        .collect();
    assert_eq!(
        c.file_write(&guest, &data).await.expect("write"),
        data.len() as u64
    );
    assert_eq!(std::fs::read(&host).expect("on this machine"), data);
    assert_eq!(c.file_read(&guest).await.expect("read"), data);
    let (missing, _) = agent.file("missing");
    let err = c.file_read(&missing).await.expect_err("missing");
    assert_agent_error(
        err,
        "GenericError",
        &format!("failed to open file '{missing}' (mode: 'r'): No such file or directory"),
    );
}

fn assert_agent_error(err: ClientError, class: &str, desc: &str) {
    match err {
        ClientError::Agent { code, message } => {
            assert_eq!((code.as_str(), message.as_str()), (class, desc));
        }
        other => panic!("expected the agent's {class}, got {other}"),
    }
}

/// Request bytes whose replies are deterministic; each is followed by `\n` and a marker sync.
const CASES: &[&[u8]] = &[
    b"{\"execute\":\"guest-ping\"}",
    b"{\"execute\":\"guest-sync\",\"arguments\":{\"id\":99}}",
    b"{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":1234}}",
    b"{\"execute\":\"guest-no-such-command\"}",
    b"\xff{\"execute\":\"guest-ping\"}",
    b"\xff",
    b"this is not json",
    b"#foo bar",
    b"THIS",
    b"abc1",
    b"42",
    b"{}",
    b"}",
    b"[1 2]",
    b"{\"a\":1,\"a\":2}",
    b"{\"execute\" \"x\"}",
    b"{\"execute\":\"guest-p\xffing\"}",
    b"{\"execute\":\"a\tb\"}",
    b"{\"execute\":\"g\\u00zz\"}",
    b"{\"execute\":\"caf\xc3\xa9\\ud83d\\ude00\\u0001\"}",
    b"{\"execute\":\"\xc3\"}",
    b"{'execute':'guest-ping'}",
    b"{\"execute\":\"guest-ping\",\"id\":7}",
    b"{\"execute\":\"nope\",\"id\":\"x\"}",
    b"{\"execute\":\"guest-ping\",\"id\":[null,true,1.5e3,0.1,-2.5e-3,{\"b\":1,\"a\":2}]}",
    b"{\"execute\":1,\"id\":5}",
    b"{\"execute\":\"guest-ping\",\"foo\":1}",
    b"{\"execute\":\"guest-ping\",\"arguments\":[]}",
    b"{\"execute\":\"guest-ping\",\"arguments\":{\"x\":1}}",
    b"{\"execute\":\"guest-sync\"}",
    b"{\"execute\":\"guest-sync\",\"arguments\":{\"id\":\"1\"}}",
    b"{\"execute\":\"guest-sync\",\"arguments\":{\"id\":18446744073709551615}}",
    b"{\"execute\":\"guest-exec\",\"arguments\":{}}",
    b"{\"execute\":\"guest-exec-status\",\"arguments\":{\"pid\":-1}}",
    b"{\"execute\":\"guest-file-read\",\"arguments\":{\"handle\":12345}}",
    b"{\"execute\":\"guest-file-open\",\"arguments\":{\"path\":\"/x\",\"mode\":\"zz\"}}",
    b"-",
    b"01",
];

/// Sends each case then a marker `guest-sync`, and returns the bytes before the marker's reply.
async fn replies(sock: &Path) -> Vec<Vec<u8>> {
    let mut s = UnixStream::connect(sock).await.expect("connect");
    let mut out = Vec::new();
    for (i, case) in CASES.iter().enumerate() {
        let marker = 777_000 + i;
        let mut request = case.to_vec();
        request.extend_from_slice(
            format!("\n{{\"execute\":\"guest-sync\",\"arguments\":{{\"id\":{marker}}}}}")
                .as_bytes(),
        );
        s.write_all(&request).await.expect("write");
        let end = format!("{{\"return\": {marker}}}\n").into_bytes();
        let mut got = Vec::new();
        let read = async {
            let mut buf = [0u8; 4096];
            while !got.ends_with(&end) {
                let n = s.read(&mut buf).await.expect("read");
                assert!(n > 0, "agent closed during case {i}");
                got.extend_from_slice(&buf[..n]);
            }
        };
        tokio::time::timeout(EXCHANGE_DEADLINE, read)
            .await
            .unwrap_or_else(|_| panic!("no marker reply for case {i}"));
        got.truncate(got.len() - end.len());
        out.push(got);
    }
    out
}

#[tokio::test]
async fn mock_replies_byte_for_byte_like_qemu_ga() {
    let Some(real) = Agent::real().await else {
        return;
    };
    let mock = Agent::mock().await;
    let (want, got) = tokio::join!(replies(real.sock()), replies(mock.sock()));
    assert_eq!(want[0], b"{\"return\": {}}\n");
    assert_eq!(want[2], b"\xff{\"return\": 1234}\n");
    let mut diffs = Vec::new();
    for ((case, w), g) in CASES.iter().zip(&want).zip(&got) {
        assert!(!w.is_empty(), "every case draws a reply");
        if w != g {
            diffs.push(format!(
                "request {:?}\n  qemu-ga: {:?}\n  mock:    {:?}",
                String::from_utf8_lossy(case),
                String::from_utf8_lossy(w),
                String::from_utf8_lossy(g)
            ));
        }
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}
