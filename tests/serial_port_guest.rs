//! `guestwire guest --listen serial:PATH`, the agent's end of a virtio-serial port, driven through
//! the CLI on a raw pseudo-terminal standing in for `/dev/virtio-ports/<name>` (its master end
//! open = a host connected). The real port's behaviour (no host, a host leaving) is checked in a
//! real VM by `tests/real_vm.rs` and `tests/real_vm_vs_mock.rs`.

mod support;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use guestwire::wire::Decoder;
use guestwire::wire::quantix::{
    AgentMessage, Payload, PingRequest, QuantixDecoder, QuantixEncoder,
};
use nix::pty::openpty;
use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
use nix::unistd::ttyname;

const DEADLINE: Duration = Duration::from_secs(20);

#[test]
fn the_agent_serves_a_host_through_the_port_device() {
    let pty = openpty(None, None).expect("openpty");
    let mut t = tcgetattr(&pty.slave).expect("tcgetattr");
    cfmakeraw(&mut t);
    tcsetattr(&pty.slave, SetArg::TCSANOW, &t).expect("raw");
    let device = ttyname(&pty.slave).expect("ttyname");
    // Held open for the whole test: a master read with no slave descriptor open fails with EIO,
    // which would end the reader thread before the agent opens the device.
    let _slave = pty.slave;
    let mut host = std::fs::File::from(pty.master);

    let _agent = support::Proc(
        Command::new(support::BIN)
            .args(["guest", "--protocol", "quantix", "--telemetry", "0"])
            .arg("--listen")
            .arg(format!("serial:{}", device.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn guest"),
    );
    let mut reader = host.try_clone().expect("clone");
    let (tx, rx) = mpsc::channel();
    // The reader thread ends when the master is closed at the end of the test (EIO).
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = reader.read(&mut chunk) {
            if n == 0 || tx.send(chunk[..n].to_vec()).is_err() {
                break;
            }
        }
    });

    let ping = AgentMessage::new("p-7", PingRequest { sequence: 7 });
    host.write_all(&QuantixEncoder::new().to_bytes(&ping).expect("encode"))
        .expect("write ping");
    let mut decoder = QuantixDecoder::new();
    let mut buf = BytesMut::new();
    let mut seen = Vec::new();
    let start = Instant::now();
    let pong = 'wait: loop {
        while let Some(item) = decoder.decode(&mut buf) {
            let frame = item.expect("the agent sends well-formed frames");
            match frame.message.payload {
                Some(Payload::Pong(p)) => break 'wait p,
                other => seen.push(format!("{other:?}")),
            }
        }
        let left = DEADLINE.saturating_sub(start.elapsed());
        let chunk = rx
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("no pong ({e}); frames before: {seen:?}"));
        buf.extend_from_slice(&chunk);
    };
    assert_eq!(pong.sequence, 7);
    assert!(
        seen.iter().any(|s| s.contains("AgentReady")),
        "the session opens with AgentReady: {seen:?}"
    );
}
