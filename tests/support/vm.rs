//! A real QEMU guest for the real-VM tests (issue 9), set up by `scripts/vm-rig.sh`: Debian's QEMU
//! 7.2 under TCG, the 6.1 kernel, a busybox initramfs running `guestwire guest` on
//! `/dev/virtio-ports/<name>` and on `vsock:`. virtio-serial ports are exposed as Unix sockets
//! (`-chardev socket,server=on,wait=off`), vsock through `vhost-device-vsock --uds-path` (hybrid
//! vsock, Unix sockets only on this machine). QEMU and the daemon are killed and reaped by PID when
//! the [`Vm`] drops. A test-only harness rather than a `guestwire vm` subcommand: the rig's paths,
//! its cache and the QEMU command line are test infrastructure, not a diagnostic users run.
#![allow(dead_code)] // not every test uses every part

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a boot may take, QEMU start to the init's ready line (3 s idle, ~16 s with both cores
/// busy in VMLAB.md; more here because the tests may run side by side).
pub const BOOT_DEADLINE: Duration = Duration::from_secs(120);

/// Whether the real-VM tests should run (`GUESTWIRE_REAL_VM=1`).
pub fn enabled() -> bool {
    std::env::var("GUESTWIRE_REAL_VM").is_ok_and(|v| v == "1")
}

/// The rig's files, from `<cache>/rig.env` written by `scripts/vm-rig.sh`.
#[derive(Debug, Clone)]
pub struct Rig {
    qemu: PathBuf,
    qemu_lib: PathBuf,
    qemu_data: Vec<PathBuf>,
    kernel: PathBuf,
    initrd: PathBuf,
    vhost: PathBuf,
}

impl Rig {
    /// Reads the rig from `$GUESTWIRE_VM_CACHE` (default `~/.cache/guestwire-vm`); panics with the
    /// command to run when it is not set up.
    pub fn load() -> Self {
        let cache = std::env::var_os("GUESTWIRE_VM_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/guestwire-vm")
            });
        let env = std::fs::read_to_string(cache.join("rig.env")).unwrap_or_else(|e| {
            panic!(
                "{}/rig.env: {e}; run scripts/vm-rig.sh first",
                cache.display()
            )
        });
        let get = |key: &str| {
            env.lines()
                .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
                .unwrap_or_else(|| panic!("rig.env has no {key}"))
                .to_string()
        };
        Self {
            qemu: get("QEMU").into(),
            qemu_lib: get("QEMU_LIB").into(),
            qemu_data: get("QEMU_DATA").split(':').map(PathBuf::from).collect(),
            kernel: get("KERNEL").into(),
            initrd: get("INITRD").into(),
            vhost: get("VHOST_DEVICE_VSOCK").into(),
        }
    }
}

/// What the guest runs: programs on virtio-serial ports and agents on vsock ports.
#[derive(Debug, Clone, Default)]
pub struct Spec {
    /// Each port's name and its `gw.*=` kernel argument (see scripts/vm-init.sh).
    serial: Vec<(String, String)>,
    vsock: Vec<(u32, String, Vec<String>)>,
}

fn flags(f: &[&str]) -> String {
    if f.is_empty() {
        String::new()
    } else {
        format!(":{}", f.join(","))
    }
}

impl Spec {
    /// A virtio-serial port `name` with `guestwire guest --listen serial:… --protocol protocol
    /// FLAGS` on it.
    pub fn serial(mut self, name: &str, protocol: &str, f: &[&str]) -> Self {
        let arg = format!("gw.serial={name}:{protocol}{}", flags(f));
        self.serial.push((name.into(), arg));
        self
    }

    /// A virtio-serial port `name` served by the real qemu-ga.
    pub fn qemu_ga(mut self, name: &str) -> Self {
        self.serial.push((name.into(), format!("gw.qga={name}")));
        self
    }

    /// A virtio-serial port `name` the guest writes `seq 1 count` into from boot on, in 4 KiB
    /// writes (console: `GW-WRITING name`, then `GW-WROTE name` once every write was taken).
    pub fn writer(mut self, name: &str, count: u32) -> Self {
        self.serial
            .push((name.into(), format!("gw.writer={name}:{count}")));
        self
    }

    /// A virtio-serial port `name` the guest opens `delay_secs` after boot and reads until end
    /// of file (console: `GW-READING name`, then `GW-EOF name <bytes>`).
    pub fn reader(mut self, name: &str, delay_secs: u32) -> Self {
        self.serial
            .push((name.into(), format!("gw.reader={name}:{delay_secs}")));
        self
    }

    /// A vsock agent on guest port `port`.
    pub fn vsock(mut self, port: u32, protocol: &str, flags: &[&str]) -> Self {
        self.vsock.push((port, protocol.into(), own(flags)));
        self
    }

    fn cmdline(&self) -> String {
        let mut line = String::from("console=ttyS0 panic=-1 quiet");
        for (_, arg) in &self.serial {
            line += &format!(" {arg}");
        }
        for (port, proto, f) in &self.vsock {
            let f: Vec<&str> = f.iter().map(String::as_str).collect();
            line += &format!(" gw.vsock={port}:{proto}{}", flags(&f));
        }
        line
    }
}

fn own(flags: &[&str]) -> Vec<String> {
    flags.iter().map(|s| s.to_string()).collect()
}

/// A running guest; QEMU and vhost-device-vsock are killed and reaped on drop.
pub struct Vm {
    dir: tempfile::TempDir,
    qemu: Option<Child>,
    vhost: Option<Child>,
    /// QEMU start to the ready line.
    pub boot_time: Duration,
}

impl Vm {
    /// Boots a guest running `spec`, waiting (at most [`BOOT_DEADLINE`]) for its ready line.
    pub fn boot(spec: &Spec) -> Self {
        let rig = Rig::load();
        let dir = tempfile::Builder::new()
            .prefix("gw-vm")
            .tempdir()
            .expect("tempdir");
        let mut vm = Self {
            dir,
            qemu: None,
            vhost: None,
            boot_time: Duration::ZERO,
        };
        let mut qemu = Command::new(&rig.qemu);
        qemu.env("LD_LIBRARY_PATH", &rig.qemu_lib);
        for d in &rig.qemu_data {
            qemu.arg("-L").arg(d);
        }
        qemu.args([
            "-nodefaults",
            "-no-user-config",
            "-accel",
            "tcg",
            "-smp",
            "1",
        ])
        .args(["-display", "none", "-nic", "none", "-no-reboot"])
        .arg("-kernel")
        .arg(&rig.kernel)
        .arg("-initrd")
        .arg(&rig.initrd)
        .arg("-append")
        .arg(spec.cmdline())
        .arg("-serial")
        .arg(format!("file:{}", vm.console_path().display()));
        if !spec.serial.is_empty() {
            qemu.args(["-device", "virtio-serial-pci,id=vser"]);
        }
        for (i, (name, _)) in spec.serial.iter().enumerate() {
            qemu.arg("-chardev")
                .arg(format!(
                    "socket,id=ch{i},path={},server=on,wait=off",
                    vm.serial(name).display()
                ))
                .arg("-device")
                .arg(format!(
                    "virtserialport,bus=vser.0,chardev=ch{i},name={name}"
                ));
        }
        if spec.vsock.is_empty() {
            qemu.args(["-m", "256M"]);
        } else {
            let vhu = vm.dir.path().join("vhu.sock");
            let vhost = Command::new(&rig.vhost)
                .arg("--vm")
                .arg(format!(
                    "guest-cid=4,socket={},uds-path={}",
                    vhu.display(),
                    vm.vsock_uds().display()
                ))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn vhost-device-vsock");
            vm.vhost = Some(vhost);
            wait_until(
                Duration::from_secs(20),
                "vhost-device-vsock's socket",
                || vhu.exists(),
            );
            qemu.args(["-object", "memory-backend-memfd,id=mem,size=256M,share=on"])
                .args(["-machine", "pc,memory-backend=mem", "-m", "256M"])
                .arg("-chardev")
                .arg(format!("socket,id=vsk,path={}", vhu.display()))
                .args(["-device", "vhost-user-vsock-pci,chardev=vsk"]);
        }
        let started = Instant::now();
        vm.qemu = Some(
            qemu.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(
                    std::fs::File::create(vm.dir.path().join("qemu.err")).expect("qemu.err"),
                ))
                .spawn()
                .expect("spawn qemu"),
        );
        loop {
            if vm.console().contains("GUESTWIRE-READY") {
                break;
            }
            if let Some(Ok(Some(status))) = vm.qemu.as_mut().map(Child::try_wait) {
                panic!(
                    "QEMU exited ({status}) before the guest was ready: {}\nconsole:\n{}",
                    std::fs::read_to_string(vm.dir.path().join("qemu.err")).unwrap_or_default(),
                    vm.console()
                );
            }
            assert!(
                started.elapsed() < BOOT_DEADLINE,
                "the guest was not ready within {BOOT_DEADLINE:?}; console:\n{}",
                vm.console()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        vm.boot_time = started.elapsed();
        eprintln!("real VM ready in {:?}", vm.boot_time);
        vm
    }

    /// The host side of virtio-serial port `name` (a Unix socket QEMU listens on).
    pub fn serial(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("port-{name}.sock"))
    }

    /// vhost-device-vsock's hybrid-vsock socket (`CONNECT <port>\n`).
    pub fn vsock_uds(&self) -> PathBuf {
        self.dir.path().join("vsock.uds")
    }

    /// The `hvsock:PATH:PORT` endpoint of guest port `port`.
    pub fn hvsock(&self, port: u32) -> String {
        format!("hvsock:{}:{port}", self.vsock_uds().display())
    }

    /// Waits (at most `limit`) until the console shows `text`; panics with the console if not.
    pub fn wait_console(&self, text: &str, limit: Duration) {
        let start = Instant::now();
        while !self.console().contains(text) {
            assert!(
                start.elapsed() < limit,
                "the console did not show {text:?} within {limit:?}:\n{}",
                self.console()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The guest's console so far.
    pub fn console(&self) -> String {
        std::fs::read_to_string(self.console_path()).unwrap_or_default()
    }

    fn console_path(&self) -> PathBuf {
        self.dir.path().join("console.log")
    }

    /// The folder holding the VM's sockets and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        for child in [self.qemu.take(), self.vhost.take()].into_iter().flatten() {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Polls `ready` every 10 ms for at most `limit`.
pub fn wait_until(limit: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
