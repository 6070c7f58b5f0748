//! The behaviours the mock VMM claims to copy from QEMU 7.2 and vhost-device-vsock
//! (`../shared/VMLAB.md`), each checked against a real QEMU guest *and* the mock in the same test
//! by the same function, so that any divergence fails: guest writes waiting for a host, end of
//! file while no host is connected, one host client at a time, unread data discarded when a
//! client leaves, and `CONNECT` to a port nobody listens on. Skipped unless
//! `GUESTWIRE_REAL_VM=1`; see docs/real-vm.md.

mod support;
#[path = "support/vm.rs"]
mod vm;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use guestwire::vmm::serial::{GuestSide, SerialVmm, SerialVmmConfig};
use guestwire::wire::Decoder;
use guestwire::wire::quantix::{
    AgentMessage, Payload, PingRequest, QuantixDecoder, QuantixEncoder,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vm::{Spec, Vm, enabled, wait_until};

const QUANTIX_PORT: &str = "org.quantix.agent.0";
/// Deadline for anything the guest is expected to do (TCG is slow).
const DEADLINE: Duration = Duration::from_secs(60);
/// The guest's write size (`dd bs=4096` in the VM, the same chunks in the mock).
const WRITE: usize = 4096;
/// The real port's queue: 128 writes of up to 32 KiB each (VMLAB.md).
const PORT_QUEUE: usize = 128 * WRITE;

/// Returns true (and says so) when the real-VM tests are not asked for.
fn skip() -> bool {
    if !enabled() {
        eprintln!("skipped: set GUESTWIRE_REAL_VM=1 (and run scripts/vm-rig.sh) to run");
        return true;
    }
    false
}

/// What `seq 1 count` prints.
fn seq(count: u32) -> Vec<u8> {
    (1..=count)
        .map(|i| format!("{i}\n"))
        .collect::<String>()
        .into_bytes()
}

/// The mock port (`guestwire vmm serial`'s library) with nothing on the guest side: the test plays
/// the guest through `open_guest`, as the VM's busybox programs do on the real port.
struct MockPort {
    rt: tokio::runtime::Runtime,
    vmm: Option<SerialVmm>,
    _dir: tempfile::TempDir,
    socket: PathBuf,
}

/// How far a guest writer got.
#[derive(Default)]
struct Progress {
    accepted: AtomicU64,
    done: AtomicBool,
}

impl MockPort {
    fn start() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("port.sock");
        let config = SerialVmmConfig::new(&socket, "org.guestwire.test.0", GuestSide::None);
        let vmm = rt.block_on(SerialVmm::start(config)).expect("mock port");
        Self {
            rt,
            vmm: Some(vmm),
            _dir: dir,
            socket,
        }
    }

    fn vmm(&self) -> &SerialVmm {
        self.vmm.as_ref().expect("running")
    }

    /// The guest writes `seq 1 count` into the port in [`WRITE`]-byte writes, from now on.
    fn writer(&self, count: u32) -> Arc<Progress> {
        let progress = Arc::new(Progress::default());
        let mut guest = self
            .vmm()
            .port()
            .open_guest()
            .expect("guest opens the port");
        let p = progress.clone();
        self.rt.spawn(async move {
            for chunk in seq(count).chunks(WRITE) {
                if guest.write_all(chunk).await.is_err() {
                    return;
                }
                p.accepted.fetch_add(chunk.len() as u64, Ordering::SeqCst);
            }
            p.done.store(true, Ordering::SeqCst);
        });
        progress
    }

    /// Whether a guest read with no host connected returns end of file at once.
    fn guest_reads_eof(&self) -> bool {
        let mut guest = self
            .vmm()
            .port()
            .open_guest()
            .expect("guest opens the port");
        self.rt.block_on(async {
            let mut buf = [0u8; 64];
            matches!(
                tokio::time::timeout(DEADLINE, guest.read(&mut buf)).await,
                Ok(Ok(0))
            )
        })
    }
}

impl Drop for MockPort {
    fn drop(&mut self) {
        if let Some(vmm) = self.vmm.take() {
            self.rt.block_on(vmm.stop());
        }
    }
}

/// `guestwire vmm ARGS --socket SOCKET` in the background, killed and reaped on drop.
struct MockProcess(Child);

impl MockProcess {
    fn start(args: &[&str], socket: &Path) -> Self {
        let child = Command::new(support::BIN)
            .arg("vmm")
            .args(args)
            .arg("--socket")
            .arg(socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn vmm");
        let mock = Self(child);
        wait_until(Duration::from_secs(20), "the mock's socket", || {
            socket.exists()
        });
        mock
    }
}

impl Drop for MockProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads from `s` until `len` bytes arrived (or the deadline, or end of file).
fn read_len(s: &mut UnixStream, len: usize) -> Vec<u8> {
    s.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let mut got = Vec::with_capacity(len);
    let mut chunk = vec![0u8; 64 * 1024];
    let start = Instant::now();
    while got.len() < len && start.elapsed() < DEADLINE {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
        }
    }
    got
}

/// Reads from `s` until what arrived ends with `tail` (bounded by `max` bytes and the deadline).
fn read_until_tail(s: &mut UnixStream, tail: &[u8], max: usize) -> Vec<u8> {
    s.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let mut got = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let start = Instant::now();
    while !got.ends_with(tail) && got.len() <= max {
        assert!(
            start.elapsed() < DEADLINE,
            "no end after {} bytes",
            got.len()
        );
        match s.read(&mut chunk) {
            Ok(0) => panic!("end of file after {} bytes", got.len()),
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) => panic!("read after {} bytes: {e}", got.len()),
        }
    }
    got
}

/// A guest that writes before any host connected: its writes are not taken (the writer has not
/// finished after a pause long enough for 100 KB), and once a host connects every byte arrives,
/// in order, and the writer finishes.
fn early_writes_wait_and_arrive_intact(port: &Path, count: u32, writer_done: impl Fn() -> bool) {
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        !writer_done(),
        "the guest's writes were all taken while no host was connected"
    );
    let expected = seq(count);
    let mut host = support::connect(port);
    let got = read_len(&mut host, expected.len());
    assert_eq!(
        got.len(),
        expected.len(),
        "every byte written early arrives"
    );
    assert!(got == expected, "in order and unchanged");
    wait_until(
        DEADLINE,
        "the writer finishing once a host reads",
        writer_done,
    );
}

#[test]
fn guest_writes_wait_for_a_host_and_nothing_is_lost_on_the_real_vm_and_the_mock() {
    if skip() {
        return;
    }
    const COUNT: u32 = 20_000; // 108,894 bytes: less than the port's queue, so only blocking explains a writer that has not finished
    let vm = Vm::boot(&Spec::default().writer("early", COUNT));
    vm.wait_console("GW-WRITING early", DEADLINE);
    early_writes_wait_and_arrive_intact(&vm.serial("early"), COUNT, || {
        vm.console().contains("GW-WROTE early")
    });

    let mock = MockPort::start();
    let progress = mock.writer(COUNT);
    early_writes_wait_and_arrive_intact(&mock.socket, COUNT, || {
        progress.done.load(Ordering::SeqCst)
    });
}

#[test]
fn guest_reads_see_end_of_file_while_no_host_is_connected_on_the_real_vm_and_the_mock() {
    if skip() {
        return;
    }
    // The VM's reader is `cat port`: it exits (and says so) only if its read returns 0.
    let vm = Vm::boot(&Spec::default().reader("lonely", 0));
    vm.wait_console("GW-EOF lonely", DEADLINE);
    let mock = MockPort::start();
    assert!(
        mock.guest_reads_eof(),
        "the mock's guest read did not see EOF"
    );
}

/// A host that writes before the guest opened the port: how much a non-blocking writer gets in
/// before `EAGAIN`. The client stays connected (leaving would discard it).
fn host_writes_before_the_guest_opens(port: &Path) -> (UnixStream, usize) {
    let mut host = support::connect(port);
    host.set_nonblocking(true).expect("nonblocking");
    let chunk = [0x5au8; WRITE];
    let mut written = 0usize;
    let start = Instant::now();
    loop {
        match host.write(&chunk) {
            Ok(n) => written += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                // Give the other side a moment to take more, then call it full.
                std::thread::sleep(Duration::from_millis(500));
                match host.write(&chunk) {
                    Ok(n) => written += n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("write after {written} bytes: {e}"),
                }
            }
            Err(e) => panic!("write after {written} bytes: {e}"),
        }
        assert!(written < 64 << 20, "the port took everything");
        assert!(start.elapsed() < DEADLINE, "no EAGAIN within the deadline");
    }
    host.set_nonblocking(false).expect("blocking");
    (host, written)
}

#[test]
fn host_writes_before_the_guest_opens_the_port_are_held_and_delivered_on_the_real_vm_and_the_mock()
{
    if skip() {
        return;
    }
    // The VM's reader opens the port 10 s after boot; the host writes at once.
    let vm = Vm::boot(&Spec::default().reader("late", 10));
    let (host, real) = host_writes_before_the_guest_opens(&vm.serial("late"));
    assert!(
        !vm.console().contains("GW-READING late"),
        "the guest opened the port before the host was done: the measure is void"
    );
    vm.wait_console("GW-READING late", DEADLINE);
    // Every byte reaches the guest once it opens the port; then the host leaves (EOF to `cat`).
    std::thread::sleep(Duration::from_secs(2));
    drop(host);
    vm.wait_console("GW-EOF late ", DEADLINE);
    let console = vm.console();
    let read_by_guest: usize = console
        .lines()
        .find_map(|l| l.trim().strip_prefix("GW-EOF late "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no byte count on the console:\n{console}"));
    assert_eq!(read_by_guest, real, "every byte held reaches the guest");

    let mock = MockPort::start();
    let (host, modelled) = host_writes_before_the_guest_opens(&mock.socket);
    let mut guest = mock
        .vmm()
        .port()
        .open_guest()
        .expect("guest opens the port");
    let got = mock.rt.block_on(async {
        let mut buf = vec![0u8; modelled];
        tokio::time::timeout(DEADLINE, guest.read_exact(&mut buf))
            .await
            .map(|r| r.map(|_| buf))
    });
    let got = got.expect("within the deadline").expect("read");
    assert!(got.iter().all(|&b| b == 0x5a), "the bytes arrive unchanged");
    drop(host);
    eprintln!("held before the guest opened: real {real} bytes, mock {modelled} bytes");
    // The client's own socket buffer holds them in both (VMLAB.md: ≈ 180 KB); the mock's model
    // and copy buffer add a page each.
    assert!(
        real.abs_diff(modelled) <= 4 * WRITE,
        "the mock holds {modelled} bytes where QEMU holds {real}"
    );
}

/// How many bytes the guest had written when the first client left without reading: a first
/// client connects and reads nothing until the guest blocks (its unread bytes stop growing), then
/// leaves; a second client gets the rest. What neither got was discarded. Returns that count.
fn unread_data_is_discarded_when_the_host_leaves(port: &Path, count: u32) -> usize {
    let expected = seq(count);
    let first = support::connect(port);
    let start = Instant::now();
    let (mut last, mut since) = (0u64, Instant::now());
    loop {
        let unread = rustix::io::ioctl_fionread(&first).expect("FIONREAD");
        if unread != last {
            (last, since) = (unread, Instant::now());
        } else if unread > 0 && since.elapsed() > Duration::from_secs(2) {
            break;
        }
        assert!(start.elapsed() < DEADLINE, "the guest never blocked");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(first);
    let mut second = support::connect(port);
    let tail = format!("\n{count}\n");
    let got = read_until_tail(&mut second, tail.as_bytes(), expected.len());
    let resumed_at = expected.len() - got.len();
    assert!(
        expected[resumed_at..] == got[..],
        "the second client gets the rest of the stream, in order"
    );
    assert_eq!(
        resumed_at % WRITE,
        0,
        "the second client starts at a write boundary ({resumed_at})"
    );
    assert!(
        resumed_at >= PORT_QUEUE,
        "at least the port's queue ({PORT_QUEUE}) is discarded, not {resumed_at}"
    );
    resumed_at
}

#[test]
fn a_leaving_host_s_unread_data_is_discarded_on_the_real_vm_and_the_mock() {
    if skip() {
        return;
    }
    const COUNT: u32 = 300_000; // 2,088,895 bytes: more than the port and the socket hold
    let vm = Vm::boot(&Spec::default().writer("flood", COUNT));
    vm.wait_console("GW-WRITING flood", DEADLINE);
    let real = unread_data_is_discarded_when_the_host_leaves(&vm.serial("flood"), COUNT);
    let mock = MockPort::start();
    let _progress = mock.writer(COUNT);
    let modelled = unread_data_is_discarded_when_the_host_leaves(&mock.socket, COUNT);
    eprintln!("discarded: real {real} bytes, mock {modelled} bytes");
    // The port's queue and the host socket's share are modelled exactly; the mock's own socket
    // (kept at a two-page buffer, which the kernel doubles) and its copy chunk hold a few pages.
    assert!(
        real.abs_diff(modelled) <= 8 * WRITE,
        "the mock discards {modelled} bytes where QEMU discards {real}"
    );
}

fn ping_frame(seq: u64) -> Vec<u8> {
    let m = AgentMessage::new(format!("p-{seq}"), PingRequest { sequence: seq });
    QuantixEncoder::new().to_bytes(&m).expect("encode").to_vec()
}

/// Reads quantix frames from `s` until a pong; its sequence. Panics at the read deadline.
fn next_pong(s: &mut UnixStream) -> u64 {
    s.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let mut decoder = QuantixDecoder::new();
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 4096];
    let start = Instant::now();
    loop {
        assert!(start.elapsed() < DEADLINE, "no pong within the deadline");
        while let Some(item) = decoder.decode(&mut buf) {
            // Bad frames are skipped as the host client does: after a host leaves, QEMU keeps
            // no boundary, and the next client may start mid-stream.
            if let Ok(frame) = item
                && let Some(Payload::Pong(p)) = frame.message.payload
            {
                return p.sequence;
            }
        }
        let n = s.read(&mut chunk).expect("read within the deadline");
        assert!(n > 0, "EOF before a pong");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// One client at a time: while the first is connected and served, a second one's `connect()`
/// succeeds but it is starved; when the first leaves, the second is served.
fn second_client_waits_for_the_first(port: &Path) {
    let mut first = support::connect(port);
    first.write_all(&ping_frame(1)).expect("first ping");
    assert_eq!(next_pong(&mut first), 1);
    let mut second = UnixStream::connect(port).expect("second connects (backlog)");
    second.write_all(&ping_frame(2)).expect("second ping waits");
    // The first is still served; by then the second's ping would have had its answer if it were
    // being served alongside.
    first.write_all(&ping_frame(3)).expect("first ping again");
    assert_eq!(next_pong(&mut first), 3);
    second.set_nonblocking(true).expect("nonblocking");
    let mut byte = [0u8; 1];
    match second.read(&mut byte) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the second client got {other:?} while the first was connected"),
    }
    second.set_nonblocking(false).expect("blocking");
    drop(first);
    assert_eq!(next_pong(&mut second), 2, "served once the first left");
}

#[test]
fn a_second_client_is_starved_until_the_first_leaves_on_the_real_vm_and_the_mock() {
    if skip() {
        return;
    }
    let vm = Vm::boot(&Spec::default().serial(QUANTIX_PORT, "quantix", &[]));
    second_client_waits_for_the_first(&vm.serial(QUANTIX_PORT));
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("port.sock");
    let _mock = MockProcess::start(&["serial", "--guest", "quantix"], &sock);
    second_client_waits_for_the_first(&sock);
}

/// What a hybrid-vsock socket answers to `CONNECT <port>\n` for a port nobody listens on.
fn connect_unheard(uds: &Path, port: u32) -> Vec<u8> {
    let mut s = support::connect(uds);
    s.set_read_timeout(Some(DEADLINE)).expect("timeout");
    s.write_all(format!("CONNECT {port}\n").as_bytes())
        .expect("write");
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).expect("EOF, not a timeout");
    rest
}

#[test]
fn connect_to_a_port_nobody_listens_on_is_plain_eof_on_the_real_vm_and_the_mock() {
    if skip() {
        return;
    }
    let vm = Vm::boot(&Spec::default().vsock(1024, "fcexec", &[]));
    let real = connect_unheard(&vm.vsock_uds(), 4321);
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("v.sock");
    let _mock = MockProcess::start(
        &[
            "hvsock",
            "--flavour",
            "vhost-device",
            "--guest-port",
            "1024=fcexec",
        ],
        &sock,
    );
    let mock = connect_unheard(&sock, 4321);
    assert_eq!(real, mock, "real {real:?} vs mock {mock:?}");
    assert!(real.is_empty(), "no error line, just EOF: {real:?}");
}
