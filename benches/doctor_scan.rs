//! The figure of issue 7: time to examine a host with 10,000 Unix sockets, `guestwire doctor
//! --scan DIR` against `ss -x -p`, in the same run on the same sockets.
//!
//! Before the benches run, this process makes 2,000 listening sockets in a temporary directory
//! and connects each twice (4,000 client ends + 4,000 accepted ends): 10,000 sockets in all, on
//! top of whatever the host already has. The soft descriptor limit is raised to the hard one for
//! that. Both contenders run as their release binaries, output to /dev/null:
//!
//! - `doctor_scan`: `guestwire doctor --scan DIR` (passive: stat each of the 2,000 socket files,
//!   one sock_diag dump, one `/proc/*/fd` walk, the rules, the report);
//! - `ss_x_p`: `ss -x -p` (every Unix socket with its processes, which is what an operator runs).
//!
//! First, outside divan, the two run alternately 15 times and the medians and their ratio are
//! printed (both meet the same load). Without `ss` (iproute2) the `ss` parts are skipped with a
//! message.

use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_guestwire");
/// Listening sockets; each gets [`CLIENTS_PER_LISTENER`] connections (two sockets each).
const LISTENERS: usize = 2_000;
const CLIENTS_PER_LISTENER: usize = 2;
/// 2,000 + 2,000 × 2 × 2 = 10,000.
const SOCKETS: usize = LISTENERS * (1 + 2 * CLIENTS_PER_LISTENER);

struct Host {
    dir: tempfile::TempDir,
    _listeners: Vec<UnixListener>,
    _ends: Vec<UnixStream>,
}

static HOST: OnceLock<Host> = OnceLock::new();

fn raise_fd_limit(need: u64) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut lim = getrlimit(Resource::Nofile);
    if lim.current.is_some_and(|c| c < need) {
        lim.current = lim.maximum;
        let _ = setrlimit(Resource::Nofile, lim);
    }
    let now = getrlimit(Resource::Nofile).current;
    assert!(
        now.is_none_or(|c| c >= need),
        "the descriptor limit ({now:?}) is below the {need} this bench needs: raise `ulimit -Hn`"
    );
}

fn make_host() -> Host {
    raise_fd_limit(SOCKETS as u64 + 256);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut listeners = Vec::with_capacity(LISTENERS);
    let mut ends = Vec::with_capacity(SOCKETS);
    for i in 0..LISTENERS {
        let path = dir.path().join(format!("vm-{i:05}.agent.sock"));
        let l = UnixListener::bind(&path).expect("bind");
        for _ in 0..CLIENTS_PER_LISTENER {
            ends.push(UnixStream::connect(&path).expect("connect"));
            ends.push(l.accept().expect("accept").0);
        }
        listeners.push(l);
    }
    Host {
        dir,
        _listeners: listeners,
        _ends: ends,
    }
}

fn host_dir() -> PathBuf {
    HOST.get_or_init(make_host).dir.path().to_path_buf()
}

fn run(cmd: &mut Command) {
    let status = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run");
    // ss exits 0; the doctor 1, as it should: this process holds both the listeners and their
    // clients, which it reports as the VMM holding connections to its own sockets. 2 would mean
    // it could not inspect.
    assert!(matches!(status.code(), Some(0 | 1)), "{cmd:?}: {status}");
}

fn have_ss() -> bool {
    let ok = Command::new("ss")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("SKIPPED ss_x_p: `ss` not found (apt-get install iproute2)");
    }
    ok
}

/// Rounds of the interleaved comparison.
const ROUNDS: usize = 15;

fn median_ms(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1000.0
}

/// One doctor run, one `ss` run, alternately, [`ROUNDS`] times: both meet the same load (on a
/// shared machine, divan's one-bench-after-the-other samples can meet different loads).
fn interleaved(dir: &std::path::Path) {
    let (mut doctor, mut ss) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let t = Instant::now();
        run(Command::new(BIN).arg("doctor").arg("--scan").arg(dir));
        doctor.push(t.elapsed());
        let t = Instant::now();
        run(Command::new("ss").arg("-x").arg("-p"));
        ss.push(t.elapsed());
    }
    let (d, s) = (median_ms(doctor), median_ms(ss));
    eprintln!(
        "interleaved, {ROUNDS} rounds: doctor --scan median {d:.1} ms, ss -x -p median {s:.1} ms, ratio {:.2}",
        d / s
    );
}

fn main() {
    let dir = host_dir();
    eprintln!(
        "{SOCKETS} Unix sockets made under {} ({LISTENERS} listeners, {} connected pairs)",
        dir.display(),
        LISTENERS * CLIENTS_PER_LISTENER
    );
    if have_ss() {
        interleaved(&dir);
    }
    divan::main();
}

#[divan::bench(sample_count = 20, sample_size = 1)]
fn doctor_scan(b: divan::Bencher) {
    let dir = host_dir();
    b.bench(|| run(Command::new(BIN).arg("doctor").arg("--scan").arg(&dir)));
}

#[divan::bench(sample_count = 20, sample_size = 1)]
fn ss_x_p(b: divan::Bencher) {
    host_dir();
    if !have_ss() {
        return;
    }
    b.bench(|| run(Command::new("ss").arg("-x").arg("-p")));
}
